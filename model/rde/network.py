"""RDE-VOS network: STCN's network (unchanged) plus the memory-compression SAMs (``mem_compress``).

The released checkpoints (``model_s012_final.pth``, ``model_s012_final_yv.pth``) hold STCN's 405
entries plus 30 ``mem_compress.*`` entries and load strictly through ``model.load_network``, which
recognises them from the ``mem_compress.`` prefix.
"""
from model.checkpoint import register_architecture
from model.rde.sam import MemoryCompression
from model.stcn.network import STCN

SAM_PREFIX = "mem_compress."


class RDE(STCN):
    """STCN (encode_key / encode_value / decode) + ``update_memory``: the recurrent RDE update."""

    def __init__(self, single_object=False, pretrained=False):
        super().__init__(single_object=single_object, pretrained=pretrained)
        self.mem_compress = MemoryCompression(self.key_channels, self.value_channels)

    def update_memory(self, rde_key, rde_value, new_key, new_value):
        """SAM update of the RDE with a new memory frame.

        rde_key, new_key: (B, 64, h, w); rde_value, new_value: (B, K, 512, h, w).
        Returns the new RDE (key, value) with the same shapes.
        """
        return self.mem_compress(rde_key, rde_value, new_key, new_value)


def build_rde(single_object=False, pretrained=False):
    return RDE(single_object=single_object, pretrained=pretrained)


def is_rde_state_dict(state_dict):
    return any(k.startswith(SAM_PREFIX) for k in state_dict)


def explain_mismatch(state_dict):
    if not is_rde_state_dict(state_dict):
        return (f"The SAM weights ({SAM_PREFIX}*) are missing: this is not an RDE-VOS checkpoint "
                "(a plain STCN checkpoint cannot run the RDE memory)")
    return None


register_architecture("rde", build=build_rde, matches=is_rde_state_dict, explain=explain_mismatch)
