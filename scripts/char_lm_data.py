"""pente's char-lm data in Python (models/src/char_lm/{vocab,data,model}.rs), so that a PyTorch
model sees the ids pente's model sees and is scored on the same windows:

- the text is split by characters, the first int(n·0.9) to train, the rest to validate;
- the vocabulary is the training part's distinct characters in code-point order, then the
  unknown symbol U+FFFD (pente's default; `--strict-vocab` drops it), which stands for every
  other character;
- a GPT of context `block` is scored on the windows of block + 1 ids starting at 0, block,
  2·block, … (non-overlapping targets), by the mean cross-entropy of every target.
"""
UNKNOWN = "\ufffd"
TRAIN_FRACTION = 0.9


def split(text):
    cut = int(len(text) * TRAIN_FRACTION)
    return text[:cut], text[cut:]


def vocab(train_text):
    chars = sorted(set(train_text))
    if UNKNOWN not in chars:
        chars.append(UNKNOWN)
    return chars


def encode(chars, text):
    index = {c: i for i, c in enumerate(chars)}
    unknown = index[UNKNOWN]
    return [index.get(c, unknown) for c in text]


def eval_starts(n_ids, block):
    """Starts of the full-length evaluation windows (block + 1 ids) of a sequence of n_ids."""
    window = block + 1
    return list(range(0, n_ids - window + 1, block)) if n_ids >= window else []
