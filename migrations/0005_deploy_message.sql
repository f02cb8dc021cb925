-- A deploy's message (`publish --message`, or the git commit's subject).
ALTER TABLE deploys ADD COLUMN message TEXT;
