"""One module per workflow stage; the Snakemake scripts only unpack and call these.

Every stage function takes keyword arguments in one order: input paths, the configuration's
``key`` (model, backend, precision, shape) where it has one, then params, then output paths. A
stage writes its outputs atomically; logging is set up by the job entry, not here.
"""
