from rerankit_length import LengthProvider


class DupProvider(LengthProvider):
    name = "dup"
