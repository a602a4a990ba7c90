"""`python -m pipeline.workers`: one worker process (the pool starts these; see worker.serve)."""

from pipeline.workers.worker import serve

serve()
