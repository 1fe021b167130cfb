"""Pretraining data: from text files to masked, padded batches of token ids.

The modules follow the data's own order, and each imports only from the ones before it:

- ``corpus``    streams documents (lists of sentences) out of text files, with statistics;
- ``masking``   corrupts token ids for masked-language modelling (80/10/10, whole words);
- ``batch``     pads and stacks examples into a :class:`~bertkit.data.batch.Batch`, and draws a
                fresh mask per batch for dynamic (RoBERTa-style) masking;
- ``pairs``     builds sentence-pair (NSP/SOP) instances as Google does;
- ``shards``    writes the statically masked pairs once to memory-mapped shards and reads them;
- ``packing``   packs documents into full-length sequences (RoBERTa);
- ``instances`` the overview of those three, and one import place for their names.

Nothing here imports the model: this layer works on strings and token ids only, and takes the
tokenizer as a callable so it does not depend on a concrete tokenizer class.
"""
