"""The Functions app: triggers, telemetry, paths over time, uninstall, config, the runtime."""
