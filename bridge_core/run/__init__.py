"""Running a job: the loop (loop.py), the model protocol it calls (protocol.py), model ids
(models.py), output layout, atomic writes and the lock (layout.py, files.py), the manifest,
fitting to the model's resolution (fit.py), metrics, and the starter spec (starter.py).

Kept free of imports, so transfer_model can import the protocol without loading the loop.
"""
