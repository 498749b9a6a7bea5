"""The training machinery behind ``train.py``: the stage loop (``trainer``), flags and the resolved
config (``config``), one recipe per model family (``recipes``), training state and weight files
(``checkpoint``) and logs (``logger``). Process groups come from ``util.distributed``.
"""
