#!/bin/bash
# Start the Next.js dev server and request / until it answers 200, so the first page is
# compiled before E2B snapshots the sandbox (same job as fragments' compile_page.sh).

warm_up() {
  local tries=0
  until [ "$(curl -s -o /dev/null -w '%{http_code}' http://localhost:3000)" = "200" ]; do
    tries=$((tries + 1))
    if [ $((tries % 20)) -eq 0 ]; then
      echo "Waiting for the Next.js server to start..."
    fi
    sleep 0.1
  done
}

warm_up &
cd /home/user && exec npx next --turbo
