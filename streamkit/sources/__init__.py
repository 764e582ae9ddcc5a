"""Source stages: microphone, camera, media files, replayed sessions (ports "audio"/"video")."""
