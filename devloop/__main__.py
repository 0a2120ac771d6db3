from devloop.cli import main

raise SystemExit(main())
