//! Durable hand-over of recordings to Pod's drop folder (`pod.recordings_dir`).
//! OWNER: helper "recording". Stub to be replaced.
