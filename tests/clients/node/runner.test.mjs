// RunnerClient against a real runnerd (models/tiny, --sampler=local) on
// loopback: generations equal samplerctl generate's with the same seed,
// token for token; errors carry the server's code and message.
import {describe, test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {RunnerClient, EntroserveError} from '../../../clients/node/src/index.js';
import {binary, startRunnerd, samplerctl, example, jsonLines} from './servers.mjs';
import {generatedToken, generateSummary} from './expected.mjs';

const PROMPT = 'The jury said';

describe('RunnerClient', {skip: !binary('runnerd') && 'runnerd not built (no libtorch)'}, () => {
  let server;
  let client;

  before(async () => {
    assert.ok(binary('samplerctl'), 'samplerctl not built (set ENTROSERVE_SAMPLERCTL)');
    server = await startRunnerd();
    client = new RunnerClient(server.address);
  });

  after(async () => {
    client?.close();
    await server?.stop();
  });

  // samplerctl generate --json: its tokens and summary in the client's shape.
  async function samplerctlGenerate(flags) {
    const run = await samplerctl(['generate', `--server=${server.address}`, '--json', ...flags]);
    assert.equal(run.code, 0, `samplerctl generate ${flags.join(' ')}:\n${run.stdout}${run.stderr}`);
    const records = jsonLines(run.stdout);
    const summary = records.pop();
    return {tokens: records.map(generatedToken), summary: generateSummary(summary)};
  }

  async function nodeGenerate(options) {
    const generation = client.generate(options);
    const tokens = [];
    for await (const token of generation) tokens.push(token);
    return {
      tokens,
      summary: {finishReason: generation.finishReason, seed: generation.seed,
                promptTokens: generation.promptTokens,
                generatedTokens: generation.usage.generatedTokens},
    };
  }

  test('a prompt with entropix and a seed gives samplerctl\'s tokens', async () => {
    const expected = await samplerctlGenerate([`--prompt=${PROMPT}`, '--sampler=entropix',
                                               '--seed=11', '--max_new_tokens=24',
                                               '--ignore_eos']);
    const got = await nodeGenerate({prompt: PROMPT, sampler: 'entropix', seed: 11,
                                    maxNewTokens: 24, ignoreEos: true});
    assert.equal(got.tokens.length, 24);
    assert.deepEqual(got.tokens, expected.tokens);
    assert.deepEqual(got.summary, expected.summary);
    assert.deepEqual(got.summary, {finishReason: 'length', seed: '11', promptTokens: 4,
                                   generatedTokens: 24});
    // Entropix chose its mode per token from the signals.
    assert.ok(new Set(got.tokens.map((t) => t.mode)).size >= 2);
  });

  test('chat messages with a typed chain config give samplerctl\'s tokens', async () => {
    const expected = await samplerctlGenerate([
      '--chat=Tell me about Texas.', '--system=You are brief.',
      '--spec=chain { temperature: 0.9 top_k: 50 repetition_penalty: 1.1 }', '--seed=5',
      '--max_new_tokens=20']);
    const got = await nodeGenerate({
      messages: [{role: 'system', content: 'You are brief.'},
                 {role: 'user', content: 'Tell me about Texas.'}],
      sampler: {chain: {temperature: 0.9, topK: 50, repetition_penalty: 1.1}},
      seed: '5', maxNewTokens: 20});
    assert.ok(got.tokens.length > 0);
    assert.deepEqual(got.tokens, expected.tokens);
    assert.deepEqual(got.summary, expected.summary);
  });

  test('stop strings end the generation as they do for samplerctl', async () => {
    const expected = await samplerctlGenerate([`--prompt=${PROMPT}`, '--sampler=alpha',
                                               '--seed=2', '--max_new_tokens=40',
                                               '--stop=.,\\n']);
    const got = await nodeGenerate({prompt: PROMPT, sampler: 'alpha', seed: 2, maxNewTokens: 40,
                                    stop: ['.', '\n']});
    assert.deepEqual(got.tokens, expected.tokens);
    assert.deepEqual(got.summary, expected.summary);
  });

  test('the seed the server picks comes back exactly and replays the generation', async () => {
    const first = await client.generate({prompt: PROMPT, maxNewTokens: 12, ignoreEos: true})
                      .collect();
    assert.match(first.seed, /^\d+$/);
    const again = await client.generate({prompt: PROMPT, maxNewTokens: 12, ignoreEos: true,
                                         seed: BigInt(first.seed)}).collect();
    assert.equal(again.seed, first.seed);
    assert.deepEqual(again.tokens, first.tokens);
    assert.equal(again.text, first.tokens.map((t) => t.text).join(''));
    assert.equal(first.promptTokens, 4);
    assert.equal(first.usage.generatedTokens, 12);
  });

  test('token ids in give what the same text gives', async () => {
    const {ids, pieces} = await client.tokenize(PROMPT);
    assert.equal(ids.length, 4);
    assert.equal(pieces.slice(1).join(''), PROMPT);
    assert.equal(await client.detokenize(ids, {skipSpecialTokens: true}), PROMPT);
    const fromText = await client.generate({prompt: PROMPT, sampler: 'greedy', maxNewTokens: 8,
                                            ignoreEos: true}).collect();
    const fromIds = await client.generate({tokenIds: ids, sampler: 'greedy', maxNewTokens: 8,
                                           ignoreEos: true}).collect();
    assert.deepEqual(fromIds.tokens, fromText.tokens);
    const chat = await client.tokenize([{role: 'user', content: 'Hi'}]);
    assert.ok(chat.ids.length > 3);
  });

  test('info() is what samplerctl info --json says', async () => {
    const info = await client.info();
    const run = await samplerctl(['info', `--server=${server.address}`, '--json']);
    const [record] = jsonLines(run.stdout);
    assert.equal(info.family, record.family);
    assert.equal(info.vocabSize, record.vocab_size);
    assert.equal(info.parameters, Number(record.parameters));
    assert.equal(info.contextLength, record.context_length);
    assert.deepEqual(info.eosTokenIds, record.eos_token_ids);
    assert.equal(info.chatTemplate, 'chatml');
    assert.equal(info.sampler, 'local');
  });

  test('bad requests reject with the server\'s code and message; the server goes on',
       async () => {
    const run = await samplerctl(['generate', `--server=${server.address}`, '--prompt=x',
                                  '--sampler=nucleus9']);
    let message;
    await assert.rejects(nodeGenerate({prompt: 'x', sampler: 'nucleus9'}), (err) => {
      assert.ok(err instanceof EntroserveError);
      assert.equal(err.code, 3);
      assert.equal(err.codeName, 'INVALID_ARGUMENT');
      assert.match(err.details, /^sampler\.name: unknown sampler "nucleus9"/);
      message = err.message;
      return true;
    });
    assert.ok(`${run.stdout}${run.stderr}`.includes(message), `${run.stdout}${run.stderr}`);

    await assert.rejects(client.generate({prompt: 'x', maxNewTokens: 0}).collect(),
                         {name: 'EntroserveError', code: 3, message: /max_new_tokens/});
    assert.throws(() => client.generate({prompt: 'x', tokenIds: [1]}),
                  {name: 'TypeError', message: /exactly one of prompt, messages or tokenIds/});
    assert.throws(() => client.generate({prompt: 'x', max_tokens: 3}),
                  {name: 'TypeError', message: /unknown option "max_tokens"/});
    const ok = await client.generate({prompt: 'x', maxNewTokens: 2, ignoreEos: true}).collect();
    assert.equal(ok.tokens.length, 2);
  });

  test('examples/generate.mjs streams what the client gives', async () => {
    const expected = await client.generate({prompt: PROMPT, sampler: 'entropix', seed: 3,
                                            maxNewTokens: 10, ignoreEos: true}).collect();
    const args = [`--server=${server.address}`, `--prompt=${PROMPT}`, '--sampler=entropix',
                  '--seed=3', '--max-new-tokens=10', '--ignore-eos'];
    const json = await example('generate.mjs', [...args, '--json']);
    assert.equal(json.code, 0, json.stderr);
    const records = jsonLines(json.stdout);
    const summary = records.pop();
    assert.equal(summary.finishReason, 'length');
    assert.equal(summary.seed, '3');
    assert.equal(summary.usage.generatedTokens, 10);
    assert.deepEqual(records, expected.tokens);
    const text = await example('generate.mjs', args);
    assert.equal(text.code, 0, text.stderr);
    assert.equal(text.stdout, `${expected.text}\n`);
    assert.match(text.stderr, /\[finish: length; 4 prompt \+ 10 generated tokens; seed 3;/);
    const help = await example('generate.mjs', ['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^usage: node generate\.mjs/);
  });

  test('leaving the loop early cancels the generation', async () => {
    const generation = client.generate({prompt: PROMPT, maxNewTokens: 500, ignoreEos: true});
    let count = 0;
    for await (const token of generation) {
      assert.equal(token.index, count);
      if (++count === 3) break;
    }
    assert.equal(count, 3);
    assert.equal(generation.finishReason, undefined);
    // The engine lets the sequence go.
    let info;
    for (let i = 0; i < 100; ++i) {
      info = await client.info();
      if (info.running === 0 && info.waiting === 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(info.running, 0);
  });

  test('allowed token ids and DRY breaker strings reach runnerd', async () => {
    const allowed = [17, 250, 251, 4000];
    const {tokens} = await nodeGenerate({
      prompt: PROMPT, seed: 3, maxNewTokens: 8, allowedTokenIds: allowed,
      drySequenceBreakers: ['\n', ':'],
      sampler: {chain: {stages: ['dry', 'dist'], dryMultiplier: 0.8}},
    });
    assert.equal(tokens.length, 8);
    for (const token of tokens) assert.ok(allowed.includes(token.id), `drew ${token.id}`);
  });
});
