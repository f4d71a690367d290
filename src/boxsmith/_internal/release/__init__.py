"""RELEASE: every stage in order for the templates that changed (`stages`), the commands it runs
as the cli passes them in (`commands`), and the record of what each stage and template did,
printed as tables, JSON or a GitHub job summary (`report`)."""
