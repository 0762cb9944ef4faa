"""The slice viewer: image, window and level, overlays."""
