
D
$00000000-0000-4000-8000-000000000018Ä¢ „°4annot-dispatcher*g-1õ
s-18subj-oyakodon*annotator-1808BÓA beautiful oyakodon fills a black lacquered bowl with a red interior, set on a light wooden tray. Delicious-looking soft-set egg has been poured over the white rice and covers most of its surface, with pale yellow curds running into the grains at the edges. Pieces of chicken thigh, browned at the edges, sit in the egg together with thin strips of onion that have turned translucent. A few leaves of mitsuba are scattered on top of the egg, adding bright green points to the yellow surface. A pair of wooden chopsticks rests across the rim of the bowl, and a small dish of pickled ginger stands to its right on the tray.HÄ¢ „°4¢y
subj-oyakodon"oyakodon*donburi*	rice bowl2en-US:foodB
eggpoured overriceB
mitsubascattered oneggZg-1