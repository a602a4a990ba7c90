from pipeline.cli import main

if __name__ == "__main__":  # worker processes are spawned: they import this module without running it
    raise SystemExit(main())
