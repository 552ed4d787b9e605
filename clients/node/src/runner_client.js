'use strict';
// Client of runnerd (runner.v1.Runner): streamed generation with each token's
// mode, signals and parameters; tokenize, detokenize, model info.
const {EntroserveError} = require('./errors');
const {connect, unary, callOptions, shortEnum, seedField, specField, rejectUnknown} =
    require('./channel');

const GENERATE_OPTIONS = ['prompt', 'messages', 'tokenIds', 'addGenerationPrompt', 'sampler',
                          'spec', 'seed', 'maxNewTokens', 'stop', 'stopTokenIds', 'ignoreEos',
                          'details', 'allowedTokenIds', 'drySequenceBreakers', 'timeoutMs'];

function chatField(protos, messages, addGenerationPrompt, where) {
  if (!Array.isArray(messages)) throw new TypeError(`${where} must be an array of {role, content}`);
  const chat = {
    messages: messages.map((m, i) => protos.checked('runner.v1.ChatMessage', m, `${where}[${i}]`)),
  };
  if (addGenerationPrompt !== undefined) chat.addGenerationPrompt = addGenerationPrompt;
  return chat;
}

// The caller's options as a runner.v1.GenerateRequest object.
function toGenerateRequest(protos, options) {
  rejectUnknown(options, GENERATE_OPTIONS, 'generate');
  const inputs = ['prompt', 'messages', 'tokenIds'].filter((k) => options[k] !== undefined);
  if (inputs.length !== 1) {
    throw new TypeError('generate needs exactly one of prompt, messages or tokenIds' +
                        (inputs.length ? ` (got ${inputs.join(', ')})` : ''));
  }
  if (options.spec !== undefined && options.sampler !== undefined) {
    throw new TypeError('generate: give sampler or spec, not both');
  }
  const request = {};
  if (options.prompt !== undefined) request.text = String(options.prompt);
  if (options.messages !== undefined) {
    request.chat = chatField(protos, options.messages, options.addGenerationPrompt, 'messages');
  }
  if (options.tokenIds !== undefined) request.tokens = {ids: Array.from(options.tokenIds)};
  const sampler = specField(protos, options.sampler ?? options.spec, 'sampler');
  if (sampler) request.sampler = sampler;
  const seed = seedField(options.seed);
  if (seed !== undefined) request.seed = seed;
  if (options.maxNewTokens !== undefined) request.maxNewTokens = options.maxNewTokens;
  if (options.stop !== undefined) {
    request.stop = Array.isArray(options.stop) ? options.stop : [options.stop];
  }
  if (options.stopTokenIds !== undefined) request.stopTokenIds = Array.from(options.stopTokenIds);
  if (options.ignoreEos !== undefined) request.ignoreEos = Boolean(options.ignoreEos);
  if (options.allowedTokenIds !== undefined) {
    request.allowedTokenIds = Array.from(options.allowedTokenIds);
  }
  if (options.drySequenceBreakers !== undefined) {
    request.drySequenceBreakers = Array.from(options.drySequenceBreakers, String);
  }
  if (options.details !== undefined) {
    request.details = protos.checked('runner.v1.TokenDetails', options.details, 'details');
  }
  return request;
}

// One Generate call: an async iterable of the new tokens
//   {id, text, mode ('flowing', ...), inserted, index, logprob, signals, params}
// The call starts at the first iteration (or collect()). As the stream goes:
// `seed` (string) and `promptTokens` from the first message; `finishReason`
// ('length', 'eos', 'stop', 'cancelled', 'context') and `usage`
// {promptTokens, generatedTokens, timeToFirstTokenMs, totalMs} from the last.
// A failed call throws EntroserveError from the loop; leaving the loop early
// cancels the call.
class Generation {
  constructor(client, request, timeoutMs) {
    this.client = client;
    this.request = request;
    this.timeoutMs = timeoutMs;
    this.call = null;
    this.seed = undefined;
    this.promptTokens = undefined;
    this.finishReason = undefined;
    this.usage = undefined;
  }

  async* [Symbol.asyncIterator]() {
    if (this.call) throw new Error('a Generation can be iterated once');
    const {protos, stub} = this.client;
    this.call = stub.Generate(this.request, callOptions(this.timeoutMs));
    let finished = false;
    try {
      for await (const message of this.call) {
        const response = protos.plain('runner.v1.GenerateResponse', message);
        if (this.seed === undefined && (response.seed !== '0' || response.promptTokens)) {
          this.seed = response.seed;
          this.promptTokens = response.promptTokens;
        }
        for (const token of response.tokens || []) {
          yield {
            id: token.id,
            text: token.text,
            mode: shortEnum('MODE_', token.mode),
            inserted: token.inserted,
            index: token.index,
            logprob: token.logprob,
            signals: token.signals,
            params: token.params,
          };
        }
        const reason = shortEnum('FINISH_REASON_', response.finishReason);
        if (reason && reason !== 'unspecified') {
          this.finishReason = reason;
          this.usage = response.usage;
        }
      }
      finished = true;
    } catch (err) {
      finished = true;
      throw EntroserveError.fromGrpc(err);
    } finally {
      if (!finished) this.call.cancel();
    }
  }

  // Runs the generation to its end: {text, tokens, finishReason, usage, seed,
  // promptTokens}.
  async collect() {
    const tokens = [];
    for await (const token of this) tokens.push(token);
    return {
      text: tokens.map((t) => t.text).join(''),
      tokens,
      finishReason: this.finishReason,
      usage: this.usage,
      seed: this.seed,
      promptTokens: this.promptTokens,
    };
  }

  cancel() {
    if (this.call) this.call.cancel();
  }
}

class RunnerClient {
  // address: 'host:port' of runnerd. options: see channel.js's connect().
  constructor(address = 'localhost:50052', options = {}) {
    Object.assign(this, connect('runner.v1.Runner', address, options));
    this.address = address;
  }

  // options: exactly one of prompt (raw text), messages ([{role, content}],
  // with addGenerationPrompt) or tokenIds; sampler (a name or a SamplerSpec
  // object; runnerd's default when unset), seed, maxNewTokens, stop (a string
  // or strings), stopTokenIds, ignoreEos, allowedTokenIds (the tokens every
  // step may produce), drySequenceBreakers (strings runnerd tokenizes),
  // details ({signals, params,
  // logprob}), timeoutMs (no deadline by default).
  generate(options) {
    const request = toGenerateRequest(this.protos, options);
    return new Generation(this, request, options.timeoutMs);
  }

  // ModelInfo: {family, path, parameters, layers, vocabSize, contextLength,
  // eosTokenIds, chatTemplate, sampler, ...}.
  async info({timeoutMs = this.timeoutMs} = {}) {
    const response = await unary(this.stub, 'ModelInfo', {}, timeoutMs);
    return this.protos.plain('runner.v1.ModelInfoResponse', response);
  }

  // Text (or chat messages, [{role, content}]) -> {ids, pieces}.
  async tokenize(input, {addSpecialTokens, addGenerationPrompt,
                         timeoutMs = this.timeoutMs} = {}) {
    const request = Array.isArray(input) ?
        {chat: chatField(this.protos, input, addGenerationPrompt, 'messages')} :
        {text: String(input)};
    if (addSpecialTokens !== undefined) request.addSpecialTokens = addSpecialTokens;
    const response = await unary(this.stub, 'Tokenize', request, timeoutMs);
    return this.protos.plain('runner.v1.TokenizeResponse', response);
  }

  // Token ids -> text.
  async detokenize(ids, {skipSpecialTokens = false, timeoutMs = this.timeoutMs} = {}) {
    const request = {ids: Array.from(ids), skipSpecialTokens};
    const response = await unary(this.stub, 'Detokenize', request, timeoutMs);
    return response.text;
  }

  close() {
    this.stub.close();
  }
}

module.exports = {RunnerClient, Generation};
