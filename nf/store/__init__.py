"""MongoDB access: the one storage layer. Each slice owns its collections and indexes.

Only this package and the slices' ``store`` modules talk to PyMongo; PyMongo errors are
translated to ``nf.errors.StoreUnavailable`` here (``translate_errors``).
"""
