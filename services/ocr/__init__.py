"""OCR service: line recognizer (model/), its training (train/) and weights (weights/)."""
