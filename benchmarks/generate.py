"""Generation speed: bertkit's key/value cache against recomputing the prefix, and bertkit
against ``transformers``' ``generate()`` on the same weights and settings (issue 16).

One random BERT2BERT model (bert-tiny shape: 2 layers, hidden 128, 30,522-word vocabulary),
4 padded sources of up to 32 tokens, 64 new tokens (no end token, so every run makes all 64).
Variants run interleaved in one process; the table gives seconds per ``generate`` call and
ratios of medians. Outputs are checked equal before timing.

One intra-op thread by default. A decoding step of this model is ~40 small operators on 4
rows; with 2 threads on a busy machine every operator waits for its second thread to be
scheduled (~10 ms each, measured: layer norm of (4, 1, 128) took 12 ms), so cached and
uncached steps, which run the same operators on 1 vs up to 65 positions, cost about the
same and the cache looks useless (1.2x). One thread measures the work itself.

    .venv/bin/python benchmarks/generate.py [--reps 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile

import torch
import transformers

from benchtools import cpu_ticks, interleaved, load_note, ms_cell, table
from bertkit import BertConfig, EncoderDecoderModel
from bertkit.model.encoder_decoder import EncoderDecoderConfig

NEW = 64


def models() -> tuple[EncoderDecoderModel, transformers.EncoderDecoderModel]:
    torch.manual_seed(0)
    shape = dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=512, initializer_range=0.1)
    config = EncoderDecoderConfig(
        BertConfig(**shape), BertConfig(**shape, is_decoder=True, add_cross_attention=True),
        decoder_start_token_id=101, pad_token_id=0)
    ours = EncoderDecoderModel(config).eval()
    with tempfile.TemporaryDirectory() as tmp:
        ours.save_pretrained(tmp)
        theirs = transformers.EncoderDecoderModel.from_pretrained(tmp).eval()
    return ours, theirs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ours, theirs = models()
    ids = torch.randint(1000, 30000, (4, 32), generator=torch.Generator().manual_seed(1))
    mask = (torch.arange(32) < torch.tensor([32, 24, 16, 9])[:, None]).long()
    ids = ids.masked_fill(mask == 0, 0)

    def bertkit(beams: int, cache: bool = True):
        return lambda: ours.generate(ids, mask, max_new_tokens=NEW, num_beams=beams,
                                     use_cache=cache)

    def reference(beams: int):
        return lambda: theirs.generate(ids, attention_mask=mask, max_new_tokens=NEW,
                                       min_new_tokens=NEW, num_beams=beams, do_sample=False,
                                       decoder_start_token_id=101, pad_token_id=0)

    variants = {"bertkit greedy, cached": bertkit(1),
                "bertkit greedy, no cache": bertkit(1, False),
                "transformers greedy": reference(1), "bertkit beam 4, cached": bertkit(4),
                "transformers beam 4": reference(4)}
    with torch.inference_mode():
        for beams, ours_name, theirs_name in ((1, "bertkit greedy, cached", "transformers greedy"),
                                              (4, "bertkit beam 4, cached", "transformers beam 4")):
            a, b = variants[ours_name](), variants[theirs_name]()
            assert torch.equal(a, b), f"outputs differ for {beams} beam(s)"
        assert torch.equal(variants["bertkit greedy, no cache"](), variants[
            "bertkit greedy, cached"]())
        since = cpu_ticks()
        samples, _ = interleaved(variants, args.reps, calls=1)
    median = {name: statistics.median(xs) for name, xs in samples.items()}
    pairs = {"bertkit greedy, no cache": "bertkit greedy, cached",
             "transformers greedy": "bertkit greedy, cached",
             "transformers beam 4": "bertkit beam 4, cached"}
    rows = [[name, ms_cell(xs, 0),
             f"{median[name] / median[pairs[name]]:.2f}x vs {pairs[name]}" if name in pairs
             else ""] for name, xs in samples.items()]
    print(f"4 sources x 32 tokens, {NEW} new tokens, {args.threads} threads, "
          f"{args.reps} interleaved reps; {load_note(since)}")
    table(["variant", "ms per generate (median, min..max)", "slower by"], rows)


if __name__ == "__main__":
    main()
