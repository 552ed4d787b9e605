'use strict';
// What both clients share: the stub on its channel, deadlines, and the
// enum short names.
const {readFileSync} = require('fs');
const grpc = require('@grpc/grpc-js');
const {loadProtos} = require('./protos');
const {EntroserveError} = require('./errors');

const MIB = 1024 * 1024;
// samplerd's and runnerd's own default --max_message_mb.
const DEFAULT_MAX_MESSAGE_MB = 64;
// Deadline of the unary calls unless the call or the client says otherwise.
const DEFAULT_TIMEOUT_MS = 30000;

// MODE_FLOWING -> 'flowing', FINISH_REASON_EOS -> 'eos'.
function shortEnum(prefix, value) {
  return typeof value === 'string' && value.startsWith(prefix) ?
      value.slice(prefix.length).toLowerCase() : value;
}

// Adds "authorization: Bearer TOKEN" to every call. An interceptor rather
// than call credentials: grpc-js sends those over TLS only, and the daemons
// also take tokens in plaintext.
function bearerInterceptor(token) {
  return (options, nextCall) => new grpc.InterceptingCall(nextCall(options), {
    start(metadata, listener, next) {
      metadata.set('authorization', `Bearer ${token}`);
      next(metadata, listener);
    },
  });
}

// TLS credentials from PEM files, or undefined without tlsCaFile and
// tlsCertFile.
function tlsCredentials({tlsCaFile, tlsCertFile, tlsKeyFile}) {
  if (!tlsCaFile && !tlsCertFile && !tlsKeyFile) return undefined;
  if (!tlsCertFile !== !tlsKeyFile) {
    throw new TypeError('tlsCertFile and tlsKeyFile go together: give both, or neither');
  }
  const read = (file) => (file ? readFileSync(file) : null);
  return grpc.credentials.createSsl(read(tlsCaFile), read(tlsKeyFile), read(tlsCertFile));
}

// options: protoDir, timeoutMs (unary calls; default 30 s), maxMessageMb
// (default 64), channelOptions (extra grpc-js channel options), and security:
// tlsCaFile (PEM CA that signed the server's certificate: TLS), tlsCertFile
// and tlsKeyFile (this client's certificate: mutual TLS), tlsServerName (the
// name the certificate must carry when it is not the address's host), token
// (sent on every call as "authorization: Bearer TOKEN"), or credentials
// (grpc.credentials of your own; insecure by default).
function connect(serviceName, address, options = {}) {
  const protos = loadProtos(options.protoDir);
  const [pkg, version, name] = serviceName.split('.');
  const Service = protos.grpcObject[pkg][version][name];
  const maxBytes = (options.maxMessageMb ?? DEFAULT_MAX_MESSAGE_MB) * MIB;
  const credentials =
      options.credentials || tlsCredentials(options) || grpc.credentials.createInsecure();
  const channelOptions = {
    'grpc.max_receive_message_length': maxBytes,
    'grpc.max_send_message_length': maxBytes,
    ...options.channelOptions,
  };
  if (options.tlsServerName) {
    channelOptions['grpc.ssl_target_name_override'] = options.tlsServerName;
    channelOptions['grpc.default_authority'] = options.tlsServerName;
  }
  if (options.token) channelOptions.interceptors = [bearerInterceptor(options.token)];
  const stub = new Service(address, credentials, channelOptions);
  return {protos, stub, timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS};
}

function callOptions(timeoutMs) {
  return timeoutMs > 0 && Number.isFinite(timeoutMs) ? {deadline: Date.now() + timeoutMs} : {};
}

// A unary call as a promise; failures as EntroserveError.
function unary(stub, method, request, timeoutMs) {
  return new Promise((resolve, reject) => {
    stub[method](request, callOptions(timeoutMs), (err, response) => {
      if (err) reject(EntroserveError.fromGrpc(err));
      else resolve(response);
    });
  });
}

// Seeds are uint64: a decimal string, a bigint or a safe-integer number.
function seedField(seed, where = 'seed') {
  if (seed === undefined || seed === null) return undefined;
  if (typeof seed === 'bigint' && seed >= 0n && seed < 1n << 64n) return seed.toString();
  if (typeof seed === 'number' && Number.isSafeInteger(seed) && seed >= 0) return String(seed);
  if (typeof seed === 'string' && /^\d+$/.test(seed) && BigInt(seed) < 1n << 64n) return seed;
  throw new TypeError(`${where} must be an unsigned 64-bit integer (a string, a bigint or a ` +
                      `safe-integer number), got ${String(seed)}`);
}

// A sampler spec from a name ('entropix') or a SamplerSpec object
// ({name, entropix: {...}} or {chain: {topK: 40}}).
function specField(protos, spec, where) {
  if (spec === undefined || spec === null) return undefined;
  if (typeof spec === 'string') return {name: spec};
  const checked = protos.checked('sampler.v1.SamplerSpec', spec, where);
  const configs = Object.keys(checked).filter((k) => k !== 'name');
  if (configs.length > 1) {
    throw new TypeError(`${where} has more than one config (${configs.join(', ')}); give one`);
  }
  return checked;
}

function rejectUnknown(object, allowed, where) {
  for (const key of Object.keys(object)) {
    if (!allowed.includes(key)) {
      throw new TypeError(`${where}: unknown option "${key}" (options: ${allowed.join(', ')})`);
    }
  }
}

module.exports = {connect, unary, callOptions, shortEnum, seedField, specField, rejectUnknown};
