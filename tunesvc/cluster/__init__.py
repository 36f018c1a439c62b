"""Ray clusters: addresses as users give them (`connect`), which nodes may run a run's
workers (`placement`), and tuning runs submitted as Ray jobs (`jobs`)."""
