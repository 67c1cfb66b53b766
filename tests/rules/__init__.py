"""Pure rules: tags, selectors, Services, plans, messages, errors; and aksfw_core's shape."""
