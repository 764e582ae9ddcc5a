"""The change-gated vision encoder (:mod:`.stage`) and the facts it extracts from frames:
faces, people, colours and QR codes (:mod:`.detectors`), text in view (:mod:`.ocr`)."""
