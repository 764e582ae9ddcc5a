"""Desktop demo and shared app plumbing: state (pure), renderer (pure), window, terminal view."""
