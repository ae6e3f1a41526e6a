"""What the two example apps share: settings, auth, rate limits and JSON mapping."""
