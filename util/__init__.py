"""Leaf helpers used across layers; nothing here imports the project's other packages.

``palette`` (label PNG I/O), ``atomic_files`` (write-then-rename files and folders), ``image_files``,
``interrupts`` (signals as exceptions), ``leftovers`` (temporaries of killed runs), ``cpu_allocator``,
``cli`` (one-line errors, KEY=VALUE options), ``download``, ``distributed`` (process groups).
"""
