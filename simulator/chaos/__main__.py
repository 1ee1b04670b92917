from simulator.chaos.cli import main

raise SystemExit(main())
