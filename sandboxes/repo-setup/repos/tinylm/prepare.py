"""Tokenise raw/corpus.txt into data/train.tokens and data/valid.tokens (one sentence per line, 90/10)."""

import os
import re


def main():
    with open("raw/corpus.txt") as f:
        sents = [re.findall(r"[a-z]+|\.", line.lower()) for line in f if line.strip()]
    cut = int(len(sents) * 0.9)
    os.makedirs("data", exist_ok=True)
    for name, part in (("train", sents[:cut]), ("valid", sents[cut:])):
        with open(f"data/{name}.tokens", "w") as f:
            f.writelines(" ".join(s) + "\n" for s in part)
    print(f"wrote {sum(map(len, sents[:cut]))} training tokens, {sum(map(len, sents[cut:]))} validation tokens")


if __name__ == "__main__":
    main()
