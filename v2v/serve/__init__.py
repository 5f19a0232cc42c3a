"""`v2v serve`: the local web app (optional extra ``v2v[serve]``, Gradio). See :mod:`v2v.serve.app`."""
