"""Vendored model data: MediaPipe's canonical face (Apache-2.0, see NOTICE), as an .npz."""
