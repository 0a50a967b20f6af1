"""Sweep agents: claim a run, train it with the shared training function, repeat.

- `lrtrack.agent.settings`: `AgentSettings`, how an agent behaves (``lrtrack agent``'s flags).
- `lrtrack.agent.loop`: one agent process (`Agent`): claims, trains, records each attempt
  exactly once, whatever stops it.
- `lrtrack.agent.signals`: which stop signals end an agent, when, and its exit code.
- `lrtrack.agent.supervisor`: several agent processes on one machine (one per GPU, or
  N CPU workers).
"""
