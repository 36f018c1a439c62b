"""tunesvc serve and plan, through real HTTP clients."""
