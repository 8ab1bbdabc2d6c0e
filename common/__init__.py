"""What the models and the data both need: ImageNet statistics, palettes, image sizes, the user-error type."""
