#!/bin/sh
# Mark readiness, then beat once a second so a process check has something to find.
touch /tmp/heartbeat.ready
while true; do
  date +%s > /tmp/heartbeat
  sleep 1
done
