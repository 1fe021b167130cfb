"""Pretraining data: from text files to masked, padded batches of token ids.

The modules follow the data's own order, and each imports only from the ones before it:

- ``corpus``    streams documents (lists of sentences) out of text files, with statistics;
- ``masking``   corrupts token ids for masked-language modelling (80/10/10, whole words);
- ``batch``     pads and stacks examples into a :class:`~bertkit.data.batch.Batch`, and draws a
                fresh mask per batch for dynamic (RoBERTa-style) masking;
- ``instances`` builds sentence-pair (NSP/SOP) instances and packed sequences, and writes the
                statically masked ones once to memory-mapped shards.

Nothing here imports the model: this layer works on strings and token ids only, and takes the
tokenizer as a callable so it does not depend on a concrete tokenizer class.
"""
