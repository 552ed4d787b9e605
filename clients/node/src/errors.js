'use strict';
// One error type for everything a server says went wrong: a failed call
// (gRPC status) and a failed row of a SampleStream/Sample batch (the in-band
// RowError, whose code is a gRPC status code too).
const grpc = require('@grpc/grpc-js');

const CODE_NAMES = Object.fromEntries(
    Object.entries(grpc.status).filter(([, v]) => typeof v === 'number').map(([k, v]) => [v, k]));

class EntroserveError extends Error {
  // code: the gRPC status code (3); details: the server's message.
  // extra: {sequenceId, step} for a row, {metadata} for a call.
  constructor(code, details, extra = {}) {
    const codeName = CODE_NAMES[code] || `CODE_${code}`;
    super(`${codeName}: ${details}`);
    this.name = 'EntroserveError';
    this.code = code;
    this.codeName = codeName;
    this.details = details;
    Object.assign(this, extra);
  }

  // From a grpc-js ServiceError (or any error thrown inside a call).
  static fromGrpc(err) {
    if (err instanceof EntroserveError) return err;
    if (err && typeof err.code === 'number') {
      const out = new EntroserveError(err.code, err.details ?? err.message,
                                      {metadata: err.metadata});
      out.cause = err;
      return out;
    }
    return err;
  }
}

module.exports = {EntroserveError, CODE_NAMES, status: grpc.status};
