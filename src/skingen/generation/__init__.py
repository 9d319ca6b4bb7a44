"""Generation at scale: several processes (:mod:`.parallel`), scheduler-array shards and their merge
(:mod:`.merge`), and the cost planner (:mod:`.plan`)."""
