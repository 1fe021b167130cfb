"""The encoder core: configuration, network and output records."""

from bertkit.model.bert import Bert
from bertkit.model.config import BertConfig
from bertkit.model.outputs import EncoderOutput

__all__ = ["Bert", "BertConfig", "EncoderOutput"]
