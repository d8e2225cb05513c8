export interface Level {
  level: number;
  name: string;
  minPoints: number;
  discountMilli: number;
}

/** The highest level whose threshold the points reach; the table always has a level at 0 points. */
export function levelFor(points: number, levels: readonly Level[]): Level {
  let best: Level | undefined;
  for (const l of levels) if (l.minPoints <= points && (!best || l.minPoints > best.minPoints)) best = l;
  if (!best) throw new RangeError('membership_levels has no level for 0 points');
  return best;
}

/** The level after a points change: recomputed from the new points when they moved, else as it was. */
export function levelAfterPoints(levelBefore: number, pointsAfter: number, pointsDelta: number, levels: readonly Level[]): number {
  return pointsDelta ? levelFor(pointsAfter, levels).level : levelBefore;
}
