'use strict';
// @entroserve/client: Node.js client of samplerd and runnerd.
//   const {SamplerClient, RunnerClient} = require('@entroserve/client');
// README.md's "Node.js client" section and examples/ show both in use.
const {SamplerClient, SamplerSession, SampleStream, allowedTokensField} =
    require('./sampler_client');
const {RunnerClient, Generation} = require('./runner_client');
const {EntroserveError, status} = require('./errors');
const {toTensor, encodeValues, floatToHalf, floatToBFloat16} = require('./tensor');
const {loadProtos} = require('./protos');

module.exports = {
  SamplerClient,
  SamplerSession,
  SampleStream,
  allowedTokensField,
  RunnerClient,
  Generation,
  EntroserveError,
  status,
  toTensor,
  encodeValues,
  floatToHalf,
  floatToBFloat16,
  loadProtos,
};
