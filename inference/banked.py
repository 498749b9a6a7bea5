"""Base of the policies that keep their memory in one ``MemoryBank`` (every-k and LFU)."""
from inference.memory_bank import MemoryBank
from inference.policy import MemoryPolicy


class BankedPolicy(MemoryPolicy):
    """Writes frame t's key/value to a ``MemoryBank`` and reads it with top-k; subclasses decide what
    else happens around a permanent write by overriding ``_write_permanent``."""

    def __init__(self, network, top_k, mem_every, include_last):
        super().__init__(network, mem_every=mem_every, include_last=include_last)
        self.bank = MemoryBank(top_k=top_k)

    def write(self, t, query, value, permanent=True):
        key = query.key[0].flatten(1)
        value = value.flatten(2)
        if permanent:
            self._write_permanent(t, key, value)
        else:
            self.bank.set_temporary(key, value)

    def _write_permanent(self, t, key, value):
        """key (Ck, n) and value (K, Cv, n) of frame t join the memory for good."""
        self.bank.append(t, key, value)

    def read(self, query):
        h, w = query.key.shape[-2:]
        readout, _ = self.bank.read(query.key[0].flatten(1))
        return readout.view(*readout.shape[:2], h, w)
