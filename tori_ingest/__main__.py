from tori_ingest.cli import main

raise SystemExit(main())
