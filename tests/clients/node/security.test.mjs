// The Node.js clients against samplerd and runnerd with TLS and bearer
// tokens, certificates made here with the openssl command line: mutual TLS
// with the client's certificate and the right token works, a missing token
// is UNAUTHENTICATED, a token goes in plaintext too, and runnerd over TLS
// with a token generates what a plaintext runnerd does.
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {execFileSync} from 'node:child_process';
import {mkdtempSync, writeFileSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {SamplerClient, RunnerClient, EntroserveError} from '../../../clients/node/src/index.js';
import {binary, startSamplerd, startRunnerd} from './servers.mjs';

const TOKEN = 'node-tok-5c2d';
let dir;
let tlsSamplerd;
let plainSamplerd;

function openssl(...args) {
  execFileSync('openssl', args, {stdio: 'ignore'});
}

// A key and a certificate for `cn` signed by the test's CA.
function signed(name, cn, extensions) {
  const f = (ext) => path.join(dir, `${name}.${ext}`);
  writeFileSync(f('ext'), extensions);
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${cn}`, '-keyout', f('key'),
          '-out', f('csr'));
  openssl('x509', '-req', '-days', '2', '-in', f('csr'), '-CA', path.join(dir, 'ca.pem'),
          '-CAkey', path.join(dir, 'ca.key'), '-CAcreateserial', '-out', f('pem'), '-extfile',
          f('ext'));
}

const file = (name) => path.join(dir, name);
const serverTls = () => [`--tls_cert_file=${file('server.pem')}`,
                         `--tls_key_file=${file('server.key')}`,
                         `--auth_token_file=${file('tokens')}`];
const clientTls = () => ({tlsCaFile: file('ca.pem'), tlsCertFile: file('client.pem'),
                          tlsKeyFile: file('client.key')});

before(async () => {
  assert.ok(binary('samplerd'), 'samplerd not built (set ENTROSERVE_SAMPLERD)');
  dir = mkdtempSync(path.join(tmpdir(), 'entroserve-node-certs-'));
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=ca',
          '-keyout', file('ca.key'), '-out', file('ca.pem'));
  signed('server', 'localhost',
         'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  signed('client', 'client', 'extendedKeyUsage=clientAuth\n');
  writeFileSync(file('tokens'), `# test tokens\n${TOKEN}\n`);
  tlsSamplerd = await startSamplerd([...serverTls(), `--tls_client_ca_file=${file('ca.pem')}`]);
  plainSamplerd = await startSamplerd([`--auth_token_file=${file('tokens')}`]);
});

after(async () => {
  await tlsSamplerd?.stop();
  await plainSamplerd?.stop();
  if (dir) rmSync(dir, {recursive: true, force: true});
});

test('SamplerClient with mutual TLS and a token', async () => {
  const client = new SamplerClient(tlsSamplerd.address, {...clientTls(), token: TOKEN});
  const names = (await client.samplers()).map((s) => s.name);
  assert.ok(names.includes('greedy'), names.join(','));
  client.close();

  const noToken = new SamplerClient(tlsSamplerd.address, clientTls());
  await assert.rejects(noToken.samplers(), (err) => {
    assert.ok(err instanceof EntroserveError);
    assert.equal(err.codeName, 'UNAUTHENTICATED');
    assert.match(err.message, /this server requires a token/);
    return true;
  });
  noToken.close();

  const wrong = new SamplerClient(tlsSamplerd.address, {...clientTls(), token: 'wrong'});
  await assert.rejects(wrong.samplers(), (err) => err.codeName === 'UNAUTHENTICATED');
  wrong.close();
});

test('a token goes in plaintext too', async () => {
  const client = new SamplerClient(plainSamplerd.address, {token: TOKEN});
  assert.ok((await client.samplers()).some((s) => s.name === 'greedy'));
  client.close();
});

test('half a client certificate is refused', () => {
  assert.throws(() => new SamplerClient('127.0.0.1:1', {tlsCertFile: file('client.pem')}),
                /tlsCertFile and tlsKeyFile go together/);
});

test('RunnerClient over TLS with a token generates what plaintext does',
     {skip: !binary('runnerd') && 'runnerd not built'}, async () => {
  const secure = await startRunnerd(serverTls());
  const plain = await startRunnerd();
  try {
    const request = {prompt: 'The jury said', seed: 8, maxNewTokens: 10, ignoreEos: true};
    const s = new RunnerClient(secure.address,
                               {tlsCaFile: file('ca.pem'), tlsServerName: 'localhost',
                                token: TOKEN});
    const p = new RunnerClient(plain.address);
    const got = await s.generate(request).collect();
    const want = await p.generate(request).collect();
    assert.equal(got.tokens.length, 10);
    assert.deepEqual(got.tokens, want.tokens);
    s.close();
    p.close();
  } finally {
    await secure.stop();
    await plain.stop();
  }
});
