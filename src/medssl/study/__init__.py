"""The study: one pretraining shared by every job that can reuse it, jobs that survive and resume
inside a sweep, and the report that compares them with confidence intervals."""
