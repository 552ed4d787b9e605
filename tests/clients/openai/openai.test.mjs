// runnerd's OpenAI-compatible HTTP API (--http_port) tested with OpenAI's own
// JavaScript SDK (npm openai, pinned in package-lock.json) and with curl,
// against real runnerd processes on the tiny model: completions and chat,
// stream and not, n, logprobs, stop, seeds, the extensions (sampler,
// sampler_spec, sampler_details), errors; tokens equal runner.v1.Generate's
// (the Node gRPC client) for the same sampler and seed; 64 concurrent
// streams; clients that disconnect free their slots.
import {describe, test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {execFile} from 'node:child_process';
import net from 'node:net';
import OpenAI from 'openai';
import {RunnerClient} from '../../../clients/node/src/index.js';
import {binary, startRunnerd} from '../node/servers.mjs';

const PROMPT = 'The jury said';
const MODEL = 'tiny';

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const {port} = server.address();
      server.close(() => resolve(port));
    });
  });
}

// runnerd with the HTTP API on a free port: {server, base, port}.
async function startHttpRunnerd(extra = []) {
  const port = await freePort();
  const server = await startRunnerd([`--http_port=${port}`, '--batch_invariant', ...extra]);
  return {server, port, base: `http://127.0.0.1:${port}`};
}

function curl(args) {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', ...args], {timeout: 60000, maxBuffer: 16 << 20},
             (err, stdout, stderr) => resolve({code: err ? err.code : 0, stdout, stderr}));
  });
}

const tokenIds = (choice) => choice.sampler_details.map((d) => d.token);

describe('OpenAI SDK against runnerd --http_port', {skip: !binary('runnerd') && 'runnerd not built'},
         () => {
  let runnerd;
  let client;

  before(async () => {
    runnerd = await startHttpRunnerd();
    client = new OpenAI({baseURL: `${runnerd.base}/v1`, apiKey: 'unused', maxRetries: 0});
  });

  after(async () => {
    await runnerd?.server.stop();
  });

  test('models and health', async () => {
    const models = await client.models.list();
    assert.deepEqual(models.data.map((m) => m.id), [MODEL]);
    assert.equal((await client.models.retrieve(MODEL)).object, 'model');
    const health = await fetch(`${runnerd.base}/health`);
    assert.equal(health.status, 200);
  });

  test('completions: text, usage, and the same seed gives the same text', async () => {
    const request = {model: MODEL, prompt: PROMPT, max_tokens: 12, seed: 7, ignore_eos: true};
    const a = await client.completions.create(request);
    const b = await client.completions.create(request);
    assert.equal(a.object, 'text_completion');
    assert.equal(a.choices.length, 1);
    assert.equal(a.choices[0].finish_reason, 'length');
    assert.ok(a.choices[0].text.length > 0);
    assert.deepEqual(a.usage, {prompt_tokens: 4, completion_tokens: 12, total_tokens: 16});
    assert.equal(b.choices[0].text, a.choices[0].text);
    const other = await client.completions.create({...request, seed: 8});
    assert.notEqual(other.choices[0].text, a.choices[0].text);
  });

  test('completions: token ids in, logprobs out', async () => {
    const r = await client.completions.create({model: MODEL, prompt: [1, 450, 432, 2], logprobs: 3,
                                               max_tokens: 5, seed: 1, ignore_eos: true});
    const lp = r.choices[0].logprobs;
    assert.equal(lp.tokens.length, 5);
    assert.equal(lp.token_logprobs.length, 5);
    assert.equal(lp.text_offset[0], 0);
    for (const top of lp.top_logprobs) {
      assert.ok(Object.keys(top).length >= 1 && Object.keys(top).length <= 3);
    }
    assert.equal(lp.tokens.join(''), r.choices[0].text);
  });

  test('allowed_token_ids: only the listed tokens come out', async () => {
    const base = {model: MODEL, prompt: PROMPT, max_tokens: 8, seed: 3, ignore_eos: true,
                  logprobs: 1};
    const only = async (ids) => (await client.completions.create(
        {...base, allowed_token_ids: ids})).choices[0].logprobs.tokens;
    const [a, b, both] = [await only([450]), await only([432]), await only([432, 450, 432])];
    assert.deepEqual(new Set(a).size, 1);
    assert.deepEqual(new Set(b).size, 1);
    assert.notEqual(a[0], b[0]);
    for (const token of both) assert.ok(token === a[0] || token === b[0], token);
    // With DRY breakers as strings the request is accepted and still masked.
    const dry = await client.completions.create({...base, allowed_token_ids: [450],
                                                 sampler_spec: {chain: {dry_multiplier: 0.8}},
                                                 dry_sequence_breakers: ['\n', ':']});
    assert.deepEqual(dry.choices[0].logprobs.tokens, a);
  });

  test('chat: a message, stream and not, with usage in the last chunk', async () => {
    const request = {model: MODEL, messages: [{role: 'system', content: 'Be brief.'},
                                              {role: 'user', content: 'Tell me about Texas.'}],
                     max_completion_tokens: 10, seed: 4, ignore_eos: true};
    const whole = await client.chat.completions.create(request);
    assert.equal(whole.object, 'chat.completion');
    assert.equal(whole.choices[0].message.role, 'assistant');
    const stream = await client.chat.completions.create(
        {...request, stream: true, stream_options: {include_usage: true}});
    let text = '';
    let usage;
    let finish;
    for await (const chunk of stream) {
      assert.equal(chunk.object, 'chat.completion.chunk');
      if (chunk.usage) usage = chunk.usage;
      for (const choice of chunk.choices) {
        text += choice.delta.content ?? '';
        if (choice.finish_reason) finish = choice.finish_reason;
      }
    }
    assert.equal(text, whole.choices[0].message.content);
    assert.equal(finish, 'length');
    assert.deepEqual(usage, whole.usage);
  });

  test('completions stream: the chunks add up to the whole response', async () => {
    const request = {model: MODEL, prompt: PROMPT, max_tokens: 16, seed: 9, ignore_eos: true};
    const whole = await client.completions.create(request);
    let text = '';
    for await (const chunk of await client.completions.create({...request, stream: true})) {
      text += chunk.choices.map((c) => c.text).join('');
    }
    assert.equal(text, whole.choices[0].text);
  });

  test('n: 2 with logprobs and top_logprobs: 5; choice i is seed + i', async () => {
    const request = {model: MODEL, messages: [{role: 'user', content: 'Hi'}], max_tokens: 8,
                     seed: 21, ignore_eos: true, logprobs: true, top_logprobs: 5};
    const two = await client.chat.completions.create({...request, n: 2});
    assert.equal(two.choices.length, 2);
    assert.deepEqual(two.choices.map((c) => c.index), [0, 1]);
    assert.equal(two.usage.completion_tokens, 16);
    for (const choice of two.choices) {
      assert.equal(choice.logprobs.content.length, 8);
      for (const entry of choice.logprobs.content) {
        assert.equal(entry.top_logprobs.length, 5);
        const lps = entry.top_logprobs.map((t) => t.logprob);
        assert.deepEqual([...lps].sort((a, b) => b - a), lps);
        assert.ok(entry.logprob <= lps[0] + 1e-6);
        assert.deepEqual(entry.bytes, [...Buffer.from(entry.token)]);
      }
    }
    const first = await client.chat.completions.create(request);
    const second = await client.chat.completions.create({...request, seed: 22});
    assert.equal(two.choices[0].message.content, first.choices[0].message.content);
    assert.equal(two.choices[1].message.content, second.choices[0].message.content);
    assert.deepEqual(two.choices[1].logprobs, second.choices[0].logprobs);
  });

  test('n: 2 streamed: each choice ends, and the texts match the whole response', async () => {
    const request = {model: MODEL, prompt: PROMPT, max_tokens: 6, seed: 3, n: 2, ignore_eos: true};
    const whole = await client.completions.create(request);
    const texts = ['', ''];
    const finished = [];
    for await (const chunk of await client.completions.create({...request, stream: true})) {
      for (const c of chunk.choices) {
        texts[c.index] += c.text;
        if (c.finish_reason) finished.push(c.index);
      }
    }
    assert.deepEqual(texts, whole.choices.map((c) => c.text));
    assert.deepEqual(finished.sort(), [0, 1]);
  });

  test('stop: the text ends before the stop string', async () => {
    const free = await client.completions.create({model: MODEL, prompt: PROMPT, max_tokens: 40,
                                                  seed: 2, ignore_eos: true});
    const text = free.choices[0].text;
    const stop = text.slice(text.length >> 1, (text.length >> 1) + 2);
    const stopped = await client.completions.create({model: MODEL, prompt: PROMPT, max_tokens: 40,
                                                     seed: 2, ignore_eos: true, stop: [stop]});
    assert.equal(stopped.choices[0].finish_reason, 'stop');
    assert.equal(stopped.choices[0].text, text.slice(0, text.indexOf(stop)));
  });

  test('extensions: sampler with sampler_details shows what entropix chose', async () => {
    const r = await client.completions.create({model: MODEL, prompt: PROMPT, max_tokens: 24,
                                               seed: 11, ignore_eos: true, sampler: 'entropix',
                                               temperature: 0.7, sampler_details: true});
    const details = r.choices[0].sampler_details;
    assert.equal(details.length, 24);
    assert.ok(new Set(details.map((d) => d.mode)).size >= 2);
    for (const d of details) {
      assert.equal(typeof d.signals.entropy, 'number');
      assert.equal(d.params.temperature !== undefined || d.mode === 'flowing', true);
    }
  });

  test('tokens equal runner.v1 Generate\'s for the same sampler and seed', async () => {
    const grpc = new RunnerClient(runnerd.server.address);
    try {
      for (const [spec, grpcSpec] of [
        [{chain: {temperature: 0.9, top_k: 50}}, {chain: {temperature: 0.9, topK: 50}}],
        [{name: 'entropix'}, 'entropix'],
        [{name: 'alpha'}, 'alpha'],
      ]) {
        const http = await client.completions.create({
          model: MODEL, prompt: PROMPT, max_tokens: 20, seed: 5, ignore_eos: true,
          sampler_spec: spec, sampler_details: true});
        const generated = await grpc.generate({prompt: PROMPT, sampler: grpcSpec, seed: 5,
                                               maxNewTokens: 20, ignoreEos: true}).collect();
        assert.deepEqual(tokenIds(http.choices[0]), generated.tokens.map((t) => t.id),
                         JSON.stringify(spec));
        assert.equal(http.choices[0].text, generated.tokens.map((t) => t.text).join(''));
      }
      // OpenAI's fields alone configure the chain sampler.
      const openaiFields = await client.completions.create({
        model: MODEL, prompt: PROMPT, max_tokens: 20, seed: 6, ignore_eos: true,
        temperature: 0.8, top_p: 0.9, presence_penalty: 0.5, sampler_details: true});
      const chain = await grpc.generate({
        prompt: PROMPT, seed: 6, maxNewTokens: 20, ignoreEos: true,
        sampler: {chain: {temperature: 0.8, topP: 0.9, presencePenalty: 0.5}}}).collect();
      assert.deepEqual(tokenIds(openaiFields.choices[0]), chain.tokens.map((t) => t.id));
    } finally {
      grpc.close();
    }
  });

  test('errors: 400 naming the field, 404 model and path, 413', async () => {
    const cases = [
      [{model: MODEL, prompt: PROMPT, temperature: 5}, 'temperature'],
      [{model: MODEL, prompt: PROMPT, best_of: 3}, 'best_of'],
      [{model: MODEL, prompt: PROMPT, frobnicate: 1}, 'frobnicate'],
      [{model: MODEL, prompt: PROMPT, max_tokens: 0}, 'max_tokens'],
      [{model: MODEL, prompt: PROMPT, max_tokens: 100000}, 'max_tokens'],
      [{model: MODEL, prompt: PROMPT, logit_bias: {'999999': 1}}, 'logit_bias'],
      [{model: MODEL, prompt: PROMPT, sampler: 'greedy', top_p: 0.5}, 'top_p'],
      [{model: MODEL, prompt: PROMPT, sampler_spec: {chain: {top_q: 1}}}, 'sampler_spec'],
      [{model: MODEL, prompt: PROMPT, n: 99}, 'n'],
      [{model: MODEL, prompt: PROMPT, allowed_token_ids: [3, 999999]}, 'allowed_token_ids'],
      [{model: MODEL, prompt: PROMPT, sampler: 'greedy', dry_sequence_breakers: ['\n']},
       'dry_sequence_breakers'],
    ];
    for (const [body, param] of cases) {
      await assert.rejects(client.completions.create(body), (err) => {
        assert.ok(err instanceof OpenAI.BadRequestError, `${JSON.stringify(body)}: ${err}`);
        assert.equal(err.status, 400);
        assert.equal(err.param, param, JSON.stringify(body));
        assert.equal(err.type, 'invalid_request_error');
        return true;
      });
    }
    await assert.rejects(client.completions.create({model: 'gpt-4', prompt: PROMPT}), (err) => {
      assert.ok(err instanceof OpenAI.NotFoundError);
      assert.equal(err.code, 'model_not_found');
      return true;
    });
    const path = await fetch(`${runnerd.base}/v1/nothing`);
    assert.equal(path.status, 404);
    assert.equal((await path.json()).error.code, 'unknown_url');
    const big = await fetch(`${runnerd.base}/v1/completions`, {
      method: 'POST', headers: {'content-type': 'application/json'},
      body: JSON.stringify({model: MODEL, prompt: 'x'.repeat(9 << 20)})});
    assert.equal(big.status, 413);
    assert.equal((await big.json()).error.code, 'request_too_large');
    const chunked = await curl(['-o', '/dev/null', '-w', '%{http_code}', '-H',
                                'Transfer-Encoding: chunked', '--data-binary',
                                `@${process.execPath}`, `${runnerd.base}/v1/completions`]);
    assert.equal(chunked.stdout, '413');
  });

  test('curl: the exact bytes of an event stream', async () => {
    const body = JSON.stringify({model: MODEL, prompt: PROMPT, max_tokens: 5, seed: 1,
                                 ignore_eos: true, stream: true,
                                 stream_options: {include_usage: true}});
    const run = await curl(['-N', '-D', '-', '-H', 'content-type: application/json', '-d', body,
                            `${runnerd.base}/v1/completions`]);
    assert.equal(run.code, 0, run.stderr);
    const [head, stream] = run.stdout.split('\r\n\r\n');
    assert.match(head, /^HTTP\/1\.1 200 OK/);
    assert.match(head, /\r\nContent-Type: text\/event-stream\r\n/i);
    assert.match(head, /\r\nTransfer-Encoding: chunked/i);
    const whole = await client.completions.create({...JSON.parse(body), stream: false,
                                                   stream_options: undefined});
    const texts = [];
    const id = /"id":"(cmpl-\d+)"/.exec(stream)[1];
    const created = Number(/"created":(\d+)/.exec(stream)[1]);
    // Rebuild the whole stream from the pieces it must have, byte for byte.
    const events = stream.split('\n\n');
    assert.equal(events.pop(), '');
    for (const event of events.slice(0, 5)) {
      texts.push(JSON.parse(event.slice('data: '.length)).choices[0].text);
    }
    assert.equal(texts.join(''), whole.choices[0].text);
    const chunk = (choices, usage) => `data: ${JSON.stringify({
      choices, created, id, model: MODEL, object: 'text_completion', seed: 1, usage})}\n\n`;
    let expected = '';
    for (const text of texts) {
      expected += chunk([{finish_reason: null, index: 0, logprobs: null, text}], null);
    }
    expected += chunk([{finish_reason: 'length', index: 0, logprobs: null, text: ''}], null);
    expected += chunk([], {completion_tokens: 5, prompt_tokens: 4, total_tokens: 9});
    expected += 'data: [DONE]\n\n';
    assert.equal(stream, expected);
  });

  test('64 concurrent streaming requests complete', async () => {
    const runs = Array.from({length: 64}, async (_, i) => {
      const stream = await client.chat.completions.create({
        model: MODEL, messages: [{role: 'user', content: `Count to ${i}`}], max_tokens: 6,
        seed: i, ignore_eos: true, stream: true, stream_options: {include_usage: true}});
      let usage;
      for await (const chunk of stream) if (chunk.usage) usage = chunk.usage;
      return usage.completion_tokens;
    });
    assert.deepEqual(await Promise.all(runs), Array(64).fill(6));
  });
});

describe('disconnected clients free their slots', {skip: !binary('runnerd') && 'runnerd not built'},
         () => {
  let runnerd;
  let client;

  before(async () => {
    runnerd = await startHttpRunnerd(['--max_batch=2', '--max_queue=0']);
    client = new OpenAI({baseURL: `${runnerd.base}/v1`, apiKey: 'unused', maxRetries: 0});
  });

  after(async () => {
    await runnerd?.server.stop();
  });

  const long = {model: MODEL, prompt: PROMPT, max_tokens: 900, ignore_eos: true};

  // Retries a short request until the batch has room (429 while it has not).
  async function admittedWithin(ms) {
    const end = Date.now() + ms;
    for (;;) {
      try {
        return await client.completions.create({model: MODEL, prompt: PROMPT, max_tokens: 2});
      } catch (err) {
        if (!(err instanceof OpenAI.RateLimitError) || Date.now() > end) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  test('a full batch refuses with 429; aborted streams and requests make room', async () => {
    const streams = [];
    for (let i = 0; i < 2; ++i) {
      const controller = new AbortController();
      const stream = await client.completions.create({...long, stream: true},
                                                     {signal: controller.signal});
      const iterator = stream[Symbol.asyncIterator]();
      await iterator.next();  // generating
      streams.push(controller);
    }
    await assert.rejects(client.completions.create({model: MODEL, prompt: PROMPT, max_tokens: 2}),
                         (err) => err instanceof OpenAI.RateLimitError && err.status === 429);
    for (const controller of streams) controller.abort();
    await admittedWithin(5000);

    // Whole (non-stream) requests: the client gives up; the slots come back.
    const controllers = [new AbortController(), new AbortController()];
    const pending = controllers.map((c) => client.completions.create(long, {signal: c.signal})
                                               .catch((e) => e));
    await new Promise((r) => setTimeout(r, 500));
    for (const c of controllers) c.abort();
    await Promise.all(pending);
    await admittedWithin(5000);
  });
});
