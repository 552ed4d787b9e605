// Test helpers: the built samplerd, runnerd and samplerctl, started on
// loopback with --port=0; the port is read from the "NAME listening on
// HOST:PORT" line the server prints. ctest passes the binaries' paths in
// ENTROSERVE_SAMPLERD, ENTROSERVE_RUNNERD and ENTROSERVE_SAMPLERCTL; run by
// hand (npm test in clients/node), the repository's build/bin/ is used.
import {spawn, execFile} from 'node:child_process';
import {existsSync} from 'node:fs';
import {fileURLToPath} from 'node:url';
import path from 'node:path';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '..', '..', '..');
export const TINY_MODEL = path.join(REPO, 'models', 'tiny');

// The path of a binary, or undefined when it was not built (runnerd without
// libtorch). A path given in the environment must exist; build/bin/ is
// looked at only when the environment names none of them (not under ctest).
export function binary(name) {
  const given = process.env[`ENTROSERVE_${name.toUpperCase()}`];
  if (given) {
    if (!existsSync(given)) throw new Error(`ENTROSERVE_${name.toUpperCase()}=${given}: no such file`);
    return given;
  }
  if (process.env.ENTROSERVE_SAMPLERD) return undefined;
  const built = path.join(REPO, 'build', 'bin', name);
  return existsSync(built) ? built : undefined;
}

// Servers still running when the test process exits (a failed test) are killed.
const children = new Set();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

// Starts `file` with `args`; resolves when it printed "NAME listening on
// HOST:PORT" (and `ready`, when given) with {address, output(), stop()}.
export function startServer(file, args, name, {ready, timeoutMs = 60000} = {}) {
  const child = spawn(file, args, {stdio: ['ignore', 'pipe', 'pipe']});
  children.add(child);
  let stdout = '';
  let stderr = '';
  return new Promise((resolve, reject) => {
    let address;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} did not start in ${timeoutMs} ms:\n${stdout}${stderr}`));
    }, timeoutMs);
    const check = () => {
      if (!address) {
        const m = new RegExp(`${name} listening on (\\S+):(\\d+)`).exec(stdout);
        if (m) address = `127.0.0.1:${m[2]}`;
      }
      if (address && (!ready || stdout.includes(ready))) {
        clearTimeout(timer);
        resolve({
          address,
          output: () => stdout + stderr,
          alive: () => child.exitCode === null && child.signalCode === null,
          stop: () => new Promise((done) => {
            if (child.exitCode !== null || child.signalCode !== null) return done();
            child.once('exit', () => done());
            child.kill('SIGTERM');
          }),
        });
      }
    };
    child.stdout.on('data', (d) => { stdout += d; check(); });
    child.stderr.on('data', (d) => { stderr += d; });
    child.once('exit', (code, signal) => {
      children.delete(child);
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code ?? signal}) before serving:\n${stdout}${stderr}`));
    });
  });
}

export function startSamplerd(extra = []) {
  return startServer(binary('samplerd'),
                     ['--host=127.0.0.1', '--port=0', '--workers=1', ...extra], 'samplerd');
}

// runnerd on the tiny model with the in-process sampler; resolves once the
// model is loaded.
export function startRunnerd(extra = []) {
  return startServer(binary('runnerd'),
                     [`--model=${TINY_MODEL}`, '--sampler=local', '--host=127.0.0.1', '--port=0',
                      '--threads=1', ...extra],
                     'runnerd', {ready: 'runnerd serving'});
}

// Runs samplerctl to its end: {code, stdout, stderr}.
export function samplerctl(args) {
  return new Promise((resolve) => {
    execFile(binary('samplerctl'), args, {timeout: 120000, maxBuffer: 64 << 20},
             (err, stdout, stderr) => resolve({code: err ? err.code : 0, stdout, stderr}));
  });
}

// Runs one of clients/node/examples/ with node to its end: {code, stdout, stderr}.
export function example(name, args) {
  const file = path.join(REPO, 'clients', 'node', 'examples', name);
  return new Promise((resolve) => {
    execFile(process.execPath, [file, ...args], {timeout: 120000},
             (err, stdout, stderr) => resolve({code: err ? err.code : 0, stdout, stderr}));
  });
}

// samplerctl --json output: one JSON object per line.
export function jsonLines(text) {
  return text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
}
