// The e2b JavaScript SDK against a local backend: build a template, create a sandbox, run
// commands, write/read/list files, kill it. Prints one JSON object for the test to assert.
// Usage: node backend_sdk.mjs <template name> <build context folder>
// The connection comes from the environment, as a user's would: E2B_API_KEY, E2B_API_URL and
// E2B_SANDBOX_URL (what `boxsmith backend env` prints).
import { request } from 'node:http'
import { CommandExitError, Sandbox, Template, waitForFile } from 'e2b'

const [name, context] = process.argv.slice(2)
const out = {}

// An HTTP server in perl-base (in every Debian image): answers each request with the Host header
// it saw, then closes the connection.
const PORT = 8080
const SERVER =
  `perl -MIO::Socket::INET -e '$s = IO::Socket::INET->new(LocalPort => ${PORT}, Listen => 8, ` +
  'ReuseAddr => 1) or die $!; while ($c = $s->accept) { $h = ""; while (<$c>) { ' +
  '$h = $1 if /^Host: *(\\S+)/i; last if /^\\r?$/ } ' +
  'print $c "HTTP/1.1 200 OK\\r\\nContent-Length: " . length($h) . "\\r\\nConnection: close\\r\\n\\r\\n$h"; ' +
  "close $c }'"

// GET / of a preview host: to the backend's listener with that Host header, as a browser sends
// it (Node's resolver, like Python's, does not resolve `*.localhost`).
function viaPreviewHost(host) {
  const api = new URL(process.env.E2B_API_URL)
  return new Promise((resolve, reject) => {
    const req = request(
      { host: api.hostname, port: api.port, path: '/', headers: { Host: host } },
      (res) => {
        let body = ''
        res.on('data', (chunk) => (body += chunk))
        res.on('end', () => resolve({ status: res.statusCode, body }))
      },
    )
    req.on('error', reject)
    req.end()
  })
}

const template = Template({ fileContextPath: context })
  .fromImage('debian:bookworm-slim')
  .copy('hello.txt', '/opt/app/')
  .setEnvs({ GREETING: 'hi from js' })
  .runCmd('echo "built, $GREETING" > /opt/app/built.txt')
  .setWorkdir('/opt/app')
  .setUser('user')
  .setStartCmd(
    `sh -c 'echo "$GREETING" > /tmp/start-env; touch /tmp/started; sleep 1000'`,
    waitForFile('/tmp/started'),
  )
const logs = []
const info = await Template.build(template, `${name}:v1`, {
  onBuildLogs: (entry) => logs.push(entry.message),
})
out.build = { templateId: info.templateId, logLines: logs.length, exists: await Template.exists(name) }

const sandbox = await Sandbox.create(`${name}:v1`, { envs: { TOKEN: 't1' }, timeoutMs: 120_000 })
try {
  out.sandboxId = sandbox.sandboxId
  out.running = await sandbox.isRunning()
  const run = await sandbox.commands.run('echo "${GREETING-unset} $TOKEN"; pwd; whoami; cat built.txt hello.txt')
  out.run = { stdout: run.stdout, stderr: run.stderr, exitCode: run.exitCode }
  const stderr = await sandbox.commands.run('echo oops >&2; exit 0')
  out.stderr = { stdout: stderr.stdout, stderr: stderr.stderr, exitCode: stderr.exitCode }
  try {
    await sandbox.commands.run('echo partial; exit 3')
    out.failing = { raised: false }
  } catch (err) {
    out.failing = {
      raised: err instanceof CommandExitError,
      exitCode: err.exitCode,
      stdout: err.stdout,
    }
  }
  const envs = await sandbox.commands.run('echo "$A-$B"; pwd', {
    envs: { A: 'one', B: 'two' },
    cwd: '/tmp',
  })
  out.envs = envs.stdout
  out.startEnv = await sandbox.files.read('/tmp/start-env')

  const written = await sandbox.files.write('/home/user/notes/a.txt', 'first file\n')
  await sandbox.files.write('/home/user/notes/b.txt', 'second file\n')
  out.write = { path: written.path, name: written.name }
  out.read = await sandbox.files.read('/home/user/notes/a.txt')
  out.readByShell = (await sandbox.commands.run('cat /home/user/notes/b.txt')).stdout
  const bytes = await sandbox.files.read('/opt/app/hello.txt', { format: 'bytes' })
  out.readBytes = Buffer.from(bytes).toString()
  const entries = await sandbox.files.list('/home/user/notes')
  out.list = entries
    .map((e) => ({ name: e.name, type: e.type, path: e.path }))
    .sort((a, b) => a.name.localeCompare(b.name))
  out.madeDir = await sandbox.files.makeDir('/home/user/notes/sub')
  out.renamed = (await sandbox.files.rename('/home/user/notes/b.txt', '/home/user/notes/sub/c.txt')).path
  await sandbox.files.remove('/home/user/notes/sub/c.txt')
  out.afterRemove = (await sandbox.files.list('/home/user/notes/sub')).length
  const again = await Sandbox.connect(sandbox.sandboxId)
  out.connected = (await again.commands.run('cat /opt/app/built.txt')).stdout
  const sandboxInfo = await sandbox.getInfo()
  out.info = { sandboxId: sandboxInfo.sandboxId, templateId: sandboxInfo.templateId }
  out.exists = [await sandbox.files.exists('/home/user/notes/a.txt'), await sandbox.files.exists('/nope')]

  await sandbox.commands.run(SERVER, { background: true })
  out.host = sandbox.getHost(PORT)
  let served = await viaPreviewHost(out.host)
  for (let tries = 0; served.status === 502 && tries < 50; tries++) {
    await new Promise((done) => setTimeout(done, 100)) // until the server listens
    served = await viaPreviewHost(out.host)
  }
  out.served = served
  out.closedPort = await viaPreviewHost(sandbox.getHost(PORT + 1))
} finally {
  out.killed = await sandbox.kill()
}
out.runningAfterKill = await sandbox.isRunning()
out.servedAfterKill = await viaPreviewHost(out.host)
out.listedAfterKill = (await Sandbox.list().nextItems()).some((s) => s.sandboxId === out.sandboxId)
console.log(JSON.stringify(out))
