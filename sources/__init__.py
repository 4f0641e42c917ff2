"""Reading inputs written by other tools: image files and stacks, the firstgalaxydata package, uv masks."""
